//! The Kubernetes API as a policy source (`[kubernetes]` in hostfw.toml):
//! CCNPs, this node's `Node` labels, every `Node`'s addresses and pod
//! CIDRs, and the `default/kubernetes` EndpointSlices, watched with
//! kube-runtime and turned into a [`ClusterView`] that the daemon enforces
//! through the same lowering, compile, diff and switch as files.

mod events;
mod objects;
mod view;
mod watch;

pub use view::{ClusterView, NodeFacts};
pub use watch::{Source, start};
