//! Unix domain sockets: seqpacket streams, fd passing, peer credentials.
