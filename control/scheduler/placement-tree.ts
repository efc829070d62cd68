// Spread placement for one group of identical tasks (same service, same placement and reservations).
//
// With preferences [spread=node.labels.a, spread=node.labels.b] the eligible nodes form a tree: the root
// splits by the value of label a, each branch by label b, and the leaves hold nodes (swarmkit's
// decision tree). A task goes down the branch holding the fewest tasks of the service (ties: label
// value), then, at the leaf, to the node with the fewest tasks of the service, then the fewest tasks
// overall, then the smallest node id. Nodes without the label share one branch (value "").
// Every level is a heap, so placing one task costs O(depth x log width) and never rescans nodes.
import type { TaskObject } from '../store/objects.js';
import { MinHeap } from './heap.js';
import { account, fits, type NodeInfo } from './node-info.js';

interface Leaf {
  kind: 'leaf';
  value: string;
  count: number;
  nodes: MinHeap<NodeInfo>;
}
interface Branch {
  kind: 'branch';
  value: string;
  count: number;
  children: MinHeap<Tree>;
}
type Tree = Leaf | Branch;

const treeLess = (a: Tree, b: Tree): boolean => a.count !== b.count ? a.count < b.count : a.value < b.value;

export class PlacementTree {
  private readonly root: Tree;

  constructor(
    nodes: readonly NodeInfo[],
    private readonly serviceId: string,
    labels: readonly string[],
  ) {
    this.root = this.build(nodes, labels, 0, '');
  }

  private build(nodes: readonly NodeInfo[], labels: readonly string[], depth: number, value: string): Tree {
    const svc = this.serviceId;
    let count = 0;
    for (const n of nodes) count += n.byService.get(svc) ?? 0;
    if (depth >= labels.length) {
      const heap = new MinHeap<NodeInfo>((a, b) => {
        const sa = a.byService.get(svc) ?? 0;
        const sb = b.byService.get(svc) ?? 0;
        if (sa !== sb) return sa < sb;
        if (a.total !== b.total) return a.total < b.total;
        return a.node.id < b.node.id;
      });
      for (const n of nodes) heap.push(n);
      return { kind: 'leaf', value, count, nodes: heap };
    }
    const label = labels[depth]!;
    const groups = new Map<string, NodeInfo[]>();
    for (const n of nodes) {
      const v = n.node.labels[label] ?? '';
      let g = groups.get(v);
      if (!g) groups.set(v, (g = []));
      g.push(n);
    }
    const children = new MinHeap<Tree>(treeLess);
    for (const [v, g] of groups) children.push(this.build(g, labels, depth + 1, v));
    return { kind: 'branch', value, count, children };
  }

  /** Places the task on the best node that fits, accounting it there; undefined if none fits. */
  place(t: TaskObject, ports: readonly string[] | undefined): NodeInfo | undefined {
    return this.placeIn(this.root, t, ports);
  }

  // A node or branch that cannot take this task is dropped for good: the group's tasks are identical,
  // and placing more only fills nodes, so it could not take a later one either.
  private placeIn(tree: Tree, t: TaskObject, ports: readonly string[] | undefined): NodeInfo | undefined {
    if (tree.kind === 'leaf') {
      for (;;) {
        const n = tree.nodes.pop();
        if (!n) return undefined;
        if (fits(n, t, ports)) continue;
        account(n, t, ports);
        tree.nodes.push(n);
        tree.count++;
        return n;
      }
    }
    for (;;) {
      const child = tree.children.pop();
      if (!child) return undefined;
      const n = this.placeIn(child, t, ports);
      if (!n) continue;
      tree.children.push(child);
      tree.count++;
      return n;
    }
  }
}
