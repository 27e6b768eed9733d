"""Small pieces every layer uses: the registry class, atomic file writes, device and process set-up."""
