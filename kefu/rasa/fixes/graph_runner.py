"""DaskGraphRunner.run without dask: the same nodes in a fixed order, computed once.

Rasa runs each graph (one NLU parse, 2-3 policy predictions per message) through dask's
scheduler, which orders the tasks anew on every run: 9% of a message. The graphs are
small and run in one thread anyway; inputs, outputs and exceptions are dask's.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from kefu.rasa.fixes.base import Patch, RuntimeFix


def graph_plan(schema: Any, targets: Tuple[str, ...]) -> List[Tuple[str, Tuple[str, ...]]]:
    """The nodes the targets need, each after its needs, with the names of its needs."""
    minimal = schema.minimal_graph_schema(list(targets))
    order: List[Tuple[str, Tuple[str, ...]]] = []
    seen: set = set()

    def visit(name: str) -> None:
        if name in seen or name not in minimal.nodes:
            return  # done, or an input placeholder
        seen.add(name)
        needs = tuple(minimal.nodes[name].needs.values())
        for need in needs:
            visit(need)
        order.append((name, needs))

    for name in minimal.nodes:
        visit(name)
    return order


def run_graph(
    self: Any, inputs: Optional[Dict[str, Any]] = None, targets: Optional[List[str]] = None
) -> Dict[str, Any]:
    from rasa.engine.exceptions import GraphRunError

    run_targets = targets if targets else self._graph_schema.target_names
    plans = self.__dict__.setdefault("_kefu_plans", {})
    key = tuple(run_targets)
    plan = plans.get(key)
    if plan is None:
        plan = plans[key] = graph_plan(self._graph_schema, key)
    values: Dict[str, Any] = {}
    if inputs:
        for input_name, input_value in inputs.items():
            if isinstance(input_value, str) and (
                input_value in values or any(input_value == name for name, _ in plan)
            ):
                raise GraphRunError(
                    f"Input value '{input_value}' clashes with a node name. Make sure "
                    f"that none of the input names passed to the `run` method are the "
                    f"same as node names in the graph schema."
                )
            values[input_name] = (input_name, input_value)
    nodes = self._instantiated_nodes
    try:
        for name, needs in plan:
            if name in values:
                continue  # an input given under a node's name replaces it, as in dask
            # As in dask, a need that names neither a node nor an input is passed as is.
            values[name] = nodes[name](*(values.get(need, need) for need in needs))
        return dict(values[target] for target in run_targets)
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e


FIX = RuntimeFix(
    name="graph_runner",
    summary="Rasa's graphs run in a fixed topological order instead of dask's scheduler",
    patches=[
        Patch(
            "rasa.engine.runner.dask:DaskGraphRunner",
            "run",
            run_graph,
            fingerprint="45f0f52f574f3aa9",
        )
    ],
)
