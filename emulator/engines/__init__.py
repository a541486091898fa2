"""The NeuronCore engines: on-chip memory, the Tensor Engine and its accumulation models, cost estimates."""
