"""Local servers that speak the audio providers' documented HTTP contracts."""
