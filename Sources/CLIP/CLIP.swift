// Placeholder until the CLIP target lands.
