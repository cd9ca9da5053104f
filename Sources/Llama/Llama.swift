// Placeholder until the Llama target lands.
