// Placeholder until the ModelFiles target lands.
