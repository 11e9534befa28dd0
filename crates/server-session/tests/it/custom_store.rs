//! A store of four methods serves sessions: the example store meets the
//! store contract.

#[path = "../../examples/custom_store.rs"]
mod example;

#[tokio::test]
async fn a_store_of_four_methods_meets_the_contract() {
    let store = example::MapStore::default();
    server_session::store::conformance::run(&store, tokio::time::sleep).await;
}
