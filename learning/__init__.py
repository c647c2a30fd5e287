"""How a circuit *learns*: phases, gradient estimates, local updates, training."""
