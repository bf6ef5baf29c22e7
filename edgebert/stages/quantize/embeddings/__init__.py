"""Low-bit word embeddings: the biggest tensor of a small INT8 model, made smaller.

After dynamic INT8, a 3-layer student's word table (vocabulary x hidden, one byte each) is
most of the file: 5.2 of the 7.4 MB of the default recipe's Rotten Tomatoes artifact; after
static INT8 for arm64, whose guard keeps the fused embedding in FP32, it is 20.9 of 26.2 MB.

    ladder.py     which bits to try for --embedding-bits, and which table is kept
    rewrite.py    the graph rewrite: the fused embedding taken apart, the table read low-bit
    codecs.py     the codecs: 4-bit blockwise, 2- and 1-bit product quantization
    codebooks.py  the 1-bit codebooks trained to keep the model's outputs
"""
