"""The bottom layer: what every other layer shares and nothing of the package is imported for. Settings read at
the edges, where outputs go, the experiment configs and the thesis's numbers (plain data), the backbones as
data, the class taxonomy and the exit codes of every command."""
