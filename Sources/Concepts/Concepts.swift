// Placeholder until the Concepts target lands.
