"""Decoding: greedy and beam search, translating text with a trained model, unknown-word
replacement."""
