"""Stage 6, tensors: a prepared split as pre-padded integer tensors, and its mini-batches."""
