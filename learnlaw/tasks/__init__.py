"""The paper's tasks: the teacher–student perceptron, a small MLP, and the Transformer language
model with its generated story corpus, tokenizer and perturbations."""
