// Placeholder until the EX2 target lands.
