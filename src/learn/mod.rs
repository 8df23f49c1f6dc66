//! Learning: from a corpus to a prepared dataset, the GPT that reads it, training, the devices it
//! runs on, and the checkpoint folders that keep a trained model.

pub mod checkpoint;
pub mod copies;
pub mod corpus;
pub mod dataset;
pub mod device;
pub mod fused;
pub mod model;
pub mod rotary;
pub mod train;
