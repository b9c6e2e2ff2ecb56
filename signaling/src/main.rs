//! `signaling`: the signaling service, and `signaling dev` for a one-process local deployment.

fn main() {
    println!("signaling: not yet implemented");
}
