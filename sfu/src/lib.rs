//! The SFU shell: sockets, timers, the control API and metrics around the forwarding core.
