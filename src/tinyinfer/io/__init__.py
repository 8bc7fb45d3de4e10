"""Model input/output: checkpoint readers, key maps into a graph, pretrained lookup, conversion, images."""
