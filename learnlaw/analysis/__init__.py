"""Reading runs and policies: scaling-law fits, the KKT/theory checks, learning as lossless
compression, and the helpers of the chapters' experiments."""
