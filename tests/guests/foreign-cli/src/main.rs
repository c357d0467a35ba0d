//! Deliberately not a Sluice plugin: built for wasm32-wasip2 this is a
//! `wasi:cli/command` component, which the gateway must refuse to load.

fn main() {
    println!("hi");
}
