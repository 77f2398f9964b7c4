"""Radio and replay backends behind one interface (edge.scanners.base.Scanner)."""
