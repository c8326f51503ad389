//! hostfw: a host firewall for bare Linux nodes.
