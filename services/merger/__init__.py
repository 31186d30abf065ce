"""The merger: concatenates videos, crossfades audio segments and muxes soundtracks onto
videos, stream-copying whatever need not be re-encoded."""
