//! `sfu`: runs one SFU node.

fn main() {
    println!("sfu: not yet implemented");
}
