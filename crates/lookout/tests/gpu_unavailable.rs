//! GPUs on a host without NVIDIA's library or driver (CI): lookout starts, logs one line
//! saying GPUs are not monitored and why, the GPU route answers 200 `available: false`,
//! `/metrics` says `lookout_gpu_up 0` with no GPU series, and nothing is logged per tick.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpus_not_monitored_end_to_end() {
    let test = "gpus_not_monitored_end_to_end";
    let lk = Lookout::start(
        false,
        &[
            ("LOOKOUT_SAMPLING__DOCKER", "false"),
            ("LOOKOUT_SAMPLING__INTERVAL_MS", "200"),
        ],
        &[],
    );
    let c = client();
    let first = eventually(Duration::from_secs(15), || async {
        let (status, body) = get(&c, &lk.url("/api/v1/host/gpu"), ADMIN_TOKEN).await;
        (status == 200).then_some(body)
    })
    .await
    .expect("GPU route answers 200 once the first tick is in");
    if first["available"] == true {
        skipped(
            test,
            "NVML loads on this host (the GPU check is bench/gpu_check.sh)",
        );
        return;
    }
    let reason = first["reason"].as_str().unwrap_or_default();
    assert!(!reason.is_empty(), "a reason: {first}");
    assert_eq!(first["gpus"], serde_json::json!([]));
    assert_eq!(first["containers"], serde_json::json!([]));
    assert!(first["taken_at_ms"].as_i64().unwrap_or(0) > 0);

    // Several ticks later: same answer, and the log says it once.
    let (_, at) = get(&c, &lk.url("/api/v1/host"), ADMIN_TOKEN).await;
    let tick_ms = at["taken_at_ms"].as_i64().unwrap_or(0);
    let later = eventually(Duration::from_secs(10), || async {
        let (_, b) = get(&c, &lk.url("/api/v1/host/gpu"), ADMIN_TOKEN).await;
        (b["taken_at_ms"].as_i64().unwrap_or(0) >= tick_ms + 1000).then_some(b)
    })
    .await
    .expect("ticks go on");
    assert_eq!(later["available"], false);
    assert_eq!(later["reason"], first["reason"]);

    let metrics = c
        .get(lk.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.text().await.unwrap_or_default();
    assert!(text.contains("\nlookout_gpu_up 0\n"), "{text}");
    assert!(!text.contains("DCGM_FI_"), "no GPU series without GPUs");
    assert!(!text.contains("lookout_gpu_process"), "no process series");

    let (status, doc) = get(&c, &lk.url("/openapi.json"), ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    assert!(
        doc["paths"]["/api/v1/host/gpu"]["get"].is_object(),
        "documented"
    );
    for schema in ["GpuResponse", "GpuStats", "GpuProcess", "ContainerGpu"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} in the OpenAPI document"
        );
    }
    assert!(
        doc["components"]["schemas"]["ContainerStats"]["properties"]["gpu"].is_object(),
        "containers carry a gpu block"
    );

    let logs = lk.logs();
    let gpu_lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("GPU") || l.contains("NVML"))
        .collect();
    assert_eq!(
        gpu_lines.len(),
        1,
        "one GPU line in the log: {gpu_lines:#?}"
    );
    assert!(
        gpu_lines[0].contains("GPUs are not monitored"),
        "{}",
        gpu_lines[0]
    );
    assert!(
        gpu_lines[0].contains(reason),
        "the line says why: {}",
        gpu_lines[0]
    );
}
