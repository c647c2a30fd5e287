"""What a circuit *is*: elements and their current laws, circuits, netlists.

Sign convention: currents are positive into a node.  Units: V, A, S, F, s.
"""

from .atomic import atomic_open, atomic_write
from .circuit import Circuit, Dense, Input, InputLayer, Layer, Output, Sparse
from .element import ELEMENT_TYPES, Element, Law, Option, Parameter, act_option, node_voltage
from .errors import CircuitError, CircuitWarning
from .library import VCCS, Bias, Coupling, FreeNode, HalfCoupling, Resistor
from .netlist import format_netlist, parse_netlist, read_netlist, write_netlist
from .transfer import TRANSFER_FUNCTIONS, register_transfer, transfer, transfer_names

__all__ = [
    "Bias",
    "Circuit",
    "CircuitError",
    "CircuitWarning",
    "Coupling",
    "Dense",
    "ELEMENT_TYPES",
    "Element",
    "FreeNode",
    "HalfCoupling",
    "Input",
    "InputLayer",
    "Law",
    "Layer",
    "Option",
    "Output",
    "Parameter",
    "Resistor",
    "Sparse",
    "TRANSFER_FUNCTIONS",
    "VCCS",
    "act_option",
    "atomic_open",
    "atomic_write",
    "format_netlist",
    "node_voltage",
    "parse_netlist",
    "read_netlist",
    "register_transfer",
    "transfer",
    "transfer_names",
    "write_netlist",
]
