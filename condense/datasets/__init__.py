"""Built-in real datasets (registered through the ``register_datasets`` hook)."""
