"""The protocol adapters: HTTP bodies to texts and options for the core, and outcomes back."""
