// Placeholder until the Tokenizers target lands.
