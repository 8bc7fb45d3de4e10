"""The engine: the graph IR, the op-kind records, load-time passes, the runtime, the cost record."""
