"""The models, in plain torch: encoder, attention variants, decoders, the sequence-to-sequence
model and its builder."""
