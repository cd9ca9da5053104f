// Placeholder until the Imaging target lands.
