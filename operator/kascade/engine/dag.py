"""The graph of a compiled pipeline: order, cycles and reachability.

Node ids are dense integers so that the run engine's hot path works on lists
and ints, not on dicts of strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Graph:
    names: tuple[str, ...]
    upstream: tuple[tuple[int, ...], ...]
    downstream: tuple[tuple[int, ...], ...]

    @classmethod
    def build(cls, names: Sequence[str], upstream: Sequence[Sequence[int]]) -> Graph:
        down: list[list[int]] = [[] for _ in names]
        for node, ups in enumerate(upstream):
            for up in ups:
                down[up].append(node)
        return cls(tuple(names), tuple(tuple(u) for u in upstream), tuple(tuple(d) for d in down))

    def __len__(self) -> int:
        return len(self.names)

    def find_cycle(self) -> list[str] | None:
        """One cycle as a path of names (first name repeated at the end), or None."""
        white, grey, black = 0, 1, 2
        colour = [white] * len(self.names)
        parent = [-1] * len(self.names)
        for root in range(len(self.names)):
            if colour[root] != white:
                continue
            stack: list[tuple[int, int]] = [(root, 0)]
            colour[root] = grey
            while stack:
                node, index = stack[-1]
                children = self.downstream[node]
                if index < len(children):
                    stack[-1] = (node, index + 1)
                    child = children[index]
                    if colour[child] == grey:
                        path = [child]
                        cur = node
                        while cur != child:
                            path.append(cur)
                            cur = parent[cur]
                        path.append(child)
                        return [self.names[i] for i in reversed(path)]
                    if colour[child] == white:
                        colour[child] = grey
                        parent[child] = node
                        stack.append((child, 0))
                else:
                    colour[node] = black
                    stack.pop()
        return None

    def topological_order(self) -> list[int]:
        """Kahn's order, stable by declaration order (assumes no cycle)."""
        indegree = [len(u) for u in self.upstream]
        ready = [n for n, d in enumerate(indegree) if d == 0]
        order: list[int] = []
        head = 0
        while head < len(ready):
            node = ready[head]
            head += 1
            order.append(node)
            for child in self.downstream[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        return order

    def descendant_masks(self, order: Sequence[int]) -> list[int]:
        """Per node, a bitmask of every node reachable downstream of it."""
        masks = [0] * len(self.names)
        for node in reversed(order):
            mask = 0
            for child in self.downstream[node]:
                mask |= masks[child] | (1 << child)
            masks[node] = mask
        return masks

    def ancestors(self, node: int) -> set[int]:
        seen: set[int] = set()
        stack = list(self.upstream[node])
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(self.upstream[cur])
        return seen

    def descendants(self, node: int) -> set[int]:
        seen: set[int] = set()
        stack = list(self.downstream[node])
        while stack:
            cur = stack.pop()
            if cur not in seen:
                seen.add(cur)
                stack.extend(self.downstream[cur])
        return seen
