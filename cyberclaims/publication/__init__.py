"""Publication: build the read-only sector claims database away from readers, audit it, swap it in."""
