"""Quickstart: a non-reciprocal circuit from Python — equations, settling, exact local learning.

Run:  python examples/quickstart.py
"""

import sys
from pathlib import Path

# Run as a script, this folder leads sys.path, and its netlist folder circuits/ would
# then shadow the circuits package (an editable install resolves packages last).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np

from circuits import VCCS, Bias, Circuit, Coupling, FreeNode, Input, Output
from learning.algorithms import aep, compare, dyadic, reference_gradient, vf
from simulator import compile_circuit, derive, settle

# 1. Describe the circuit: elements with their current laws (currents positive into a node).
circuit = Circuit(
    [
        Input("x", value=0.7),
        FreeNode("a", C=1.0, g=1.0),
        FreeNode("b", C=1.0, g=1.0),
        VCCS("Wax", "a", "x", w=1.5, act="tanh"),  # i_a = 1.5 tanh(v_x): input drive
        VCCS("Wba", "b", "a", w=-0.9, act="tanh"),  # one-way: b listens to a, a does not listen to b
        Coupling("K", "a", "b", w=0.4, act="tanh"),  # reciprocal energy coupling
        Bias("Ib", "b", I=0.2),
        Output("b", target=-0.3),
    ],
    name="quickstart",
)

# 2. The equations of motion, derived by sympy from the element laws.
eq = derive(circuit)
print(eq.text())
print("non-reciprocal elements:", circuit.nonreciprocal_elements)

# 3. Settle to the stationary state, as the hardware would (scipy solve_ivp).
system = compile_circuit(circuit)
result = settle(system, method="ode", tol=1e-10)
print(result.message, "→ state", {n: round(float(v), 6) for n, v in zip(system.nodes, result.state[0])})

# 4. Gradient of the cost at the stationary state: exact (implicit differentiation)
#    versus AEP and Dyadic EP (exact, local) and VF (biased: the circuit is non-reciprocal).
exact = reference_gradient(system)
for estimate in (aep(system, beta=1e-3), dyadic(system, beta=1.0), vf(system, beta=1e-3)):
    print(f"{estimate.algorithm:>6}: relative error {compare(estimate, exact)['rel_error']:.1e}")

# 5. Learn: a few steps of gradient descent with AEP's local updates lower the cost.
for step in range(5):
    g = aep(system, beta=1e-3).grads
    system.set_params({k: system.params[k] - 0.1 * g[k] for k in g if system.trainable[k]})
    x0 = settle(system, method="newton", tol=1e-12).state
    print(f"step {step}: cost {float(system.cost_value(x0)[0]):.3e}")
assert np.isfinite(x0).all()
