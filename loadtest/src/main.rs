//! `loadtest`: meeting and broadcast scenarios against a real SFU and signaling service.

fn main() {
    println!("loadtest: not yet implemented");
}
