"""One policy's loop: gather facts, decide with the pure core, act (fenced), report."""
