//! Shares: directories this daemon serves to other peers. So far the index of a share
//! ([`index`]); the service that owns one index per share and serves them over the share
//! protocol comes on top of it.

pub mod index;
