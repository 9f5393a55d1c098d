//! Zero-config Swarm discovery on a real Docker engine in swarm mode (`.ci/run` installs
//! `docker.io`, starts `dockerd` and runs `docker swarm init`). vigie runs as a swarm
//! service from a `FROM scratch` image (its binary and the few shared libraries it links),
//! with the Docker socket mounted and its port published in host mode, on an attachable
//! overlay network shared with the services it should find. A labelled service (vigie
//! itself again, serving its own `/metrics`) is scraped with the expected labels, an
//! unlabelled one is not, scaling to 3 gives 3 targets and removing the service removes
//! them and makes its series stale.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().expect("running docker");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_quiet(args: &[&str]) {
    let _ = Command::new("docker").args(args).output();
}

/// Services and the network this test made, removed when it ends.
struct Cleanup {
    services: Vec<String>,
    network: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for s in &self.services {
            docker_quiet(&["service", "rm", s]);
        }
        // The network goes once its tasks are gone.
        for _ in 0..20 {
            let ok = Command::new("docker").args(["network", "rm", &self.network]).output();
            if ok.map(|o| o.status.success()).unwrap_or(false) {
                break;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Builds `vigie-e2e:<tag>` from the test binary and the shared libraries `ldd` lists.
fn build_image(tag: &str, work: &Path) -> String {
    let ctx = work.join("image");
    std::fs::create_dir_all(&ctx).unwrap();
    let bin = env!("CARGO_BIN_EXE_vigie");
    let st = Command::new("strip").arg("-o").arg(ctx.join("vigie")).arg(bin).status().unwrap();
    assert!(st.success(), "strip failed");
    let ldd = Command::new("ldd").arg(bin).output().unwrap();
    let mut copies = Vec::new();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split("=>").last().unwrap_or("").split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            let dest = ctx.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(path, &dest).unwrap();
            copies.push(path.to_string());
        }
    }
    assert!(!copies.is_empty(), "ldd found no libraries: {}", String::from_utf8_lossy(&ldd.stdout));
    // The TLS stack wants a root store even for plain-HTTP clients.
    let certs = "/etc/ssl/certs/ca-certificates.crt";
    let dest = ctx.join(certs.trim_start_matches('/'));
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::copy(certs, &dest).unwrap_or_else(|e| panic!("{certs}: {e} (install ca-certificates)"));
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY . /\nENTRYPOINT [\"/vigie\"]\n").unwrap();
    let image = format!("vigie-e2e:{tag}");
    docker(&["build", "-q", "-t", &image, ctx.to_str().unwrap()]);
    image
}

fn targets(port: u16) -> Vec<Value> {
    let Ok(r) = http("GET", port, "/api/v1/targets", None) else { return Vec::new() };
    let Ok(j) = serde_json::from_str::<Value>(&r.body) else { return Vec::new() };
    j["data"]["activeTargets"].as_array().cloned().unwrap_or_default()
}

fn of_job(port: u16, job: &str) -> Vec<Value> {
    targets(port).into_iter().filter(|t| t["labels"]["job"] == job).collect()
}

#[test]
fn labelled_services_are_found_scaled_and_removed() {
    require("docker", "docker.io");
    let info = docker(&["info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"]);
    assert_eq!(info, "active true", "the Docker engine must be a swarm manager (.ci/run runs `docker swarm init`)");
    let dir = tempfile::tempdir().unwrap();
    let tag = format!("t{}", std::process::id());
    let image = build_image(&tag, dir.path());
    let net = format!("vigie-e2e-{tag}");
    let (app, other, vigie) = (format!("app-{tag}"), format!("other-{tag}"), format!("vigie-{tag}"));
    let lost = format!("lost-{tag}");
    let _cleanup =
        Cleanup { services: vec![vigie.clone(), app.clone(), other.clone(), lost.clone()], network: net.clone() };
    docker(&["network", "create", "-d", "overlay", "--attachable", &net]);

    // Two copies of vigie serving their own /metrics on 9100: one labelled, one not.
    let target_args = ["run", "--listen", "0.0.0.0:9100", "--discovery", "none", "--data-dir", "/data"];
    let mut create =
        vec!["service", "create", "-d", "--name", &app, "--network", &net, "--mount", "type=tmpfs,dst=/data"];
    create.extend([
        "--label",
        "vigie.scrape=true",
        "--label",
        "vigie.port=9100",
        "--label",
        "com.docker.stack.namespace=e2e",
    ]);
    create.push(&image);
    create.extend(target_args);
    docker(&create);
    // Not labelled for the zero-config job, but selected by a Monitor file of stack `shop`.
    let mut plain =
        vec!["service", "create", "-d", "--name", &other, "--network", &net, "--mount", "type=tmpfs,dst=/data"];
    plain.extend(["--label", "app=plain", "--label", "com.docker.stack.namespace=shop"]);
    plain.push(&image);
    plain.extend(target_args);
    docker(&plain);

    let objects = dir.path().join("monitors");
    std::fs::create_dir_all(&objects).unwrap();
    std::fs::write(
        objects.join("plain.yaml"),
        "apiVersion: vigie.dev/v1alpha1\nkind: Monitor\nmetadata: {name: plain, namespace: shop}\nspec:\n  \
         selector: {matchLabels: {app: plain}}\n  namespaceSelector: {own: true}\n  \
         endpoints: [{port: 9100, interval: 1s}]\n",
    )
    .unwrap();
    let objects_mount = format!("type=bind,src={},dst=/monitors,readonly", objects.display());
    let port = free_port();
    let publish = format!("mode=host,target=9090,published={port}");
    docker(&[
        "service",
        "create",
        "-d",
        "--name",
        &vigie,
        "--network",
        &net,
        "--mount",
        "type=bind,src=/var/run/docker.sock,dst=/var/run/docker.sock",
        "--mount",
        "type=tmpfs,dst=/data",
        "--mount",
        &objects_mount,
        "--publish",
        &publish,
        &image,
        "run",
        "--listen",
        "0.0.0.0:9090",
        "--discovery",
        "swarm",
        "--data-dir",
        "/data",
        "--swarm-relist-interval",
        "30s",
        "--monitors-dir",
        "/monitors",
    ]);

    // The labelled task is scraped, with the labels users expect and the meta labels.
    let up = eventually(Duration::from_secs(90), "the labelled service's task up", || {
        of_job(port, &app).into_iter().find(|t| t["health"] == "up")
    });
    let l = &up["labels"];
    assert_eq!(l["swarm_service"], app.as_str());
    assert_eq!(l["swarm_stack"], "e2e");
    assert_eq!(l["swarm_task_slot"], "1");
    assert!(l["swarm_node"].as_str().is_some_and(|n| !n.is_empty()), "{up}");
    assert!(l["instance"].as_str().unwrap().ends_with(":9100"), "{up}");
    let d = &up["discoveredLabels"];
    assert_eq!(d["__meta_dockerswarm_network_name"], net.as_str());
    assert_eq!(d["__meta_dockerswarm_task_desired_state"], "running");
    assert_eq!(d["__meta_dockerswarm_service_label_vigie_scrape"], "true");
    assert!(
        of_job(port, &other).iter().all(|t| t["scrapePool"] != "swarm"),
        "the unlabelled service is not a zero-config target"
    );

    // The Monitor file selects it, on the stack namespace.
    let selected = eventually(Duration::from_secs(60), "the Monitor's task up", || {
        targets(port).into_iter().find(|t| t["scrapePool"] == "monitor/shop/plain/0" && t["health"] == "up")
    });
    let l = &selected["labels"];
    assert_eq!(l["namespace"], "shop");
    assert_eq!(l["swarm_service"], other.as_str());
    assert_eq!(l["job"], other.as_str());
    assert_eq!(l["endpoint"], "9100");
    assert!(l["instance"].as_str().unwrap().ends_with(":9100"), "{selected}");
    let pools: Vec<Value> = targets(port).into_iter().filter(|t| t["scrapePool"] == "monitor/shop/plain/0").collect();
    assert_eq!(pools.len(), 1, "only the selected service: {pools:?}");

    // A labelled service on no network vigie shares: reported next to the targets.
    let mut lonely = vec!["service", "create", "-d", "--name", &lost, "--mount", "type=tmpfs,dst=/data"];
    lonely.extend(["--label", "vigie.scrape=true", "--label", "vigie.port=9100", &image]);
    lonely.extend(target_args);
    docker(&lonely);
    let errors = eventually(Duration::from_secs(60), "the unreachable service in discoveryErrors", || {
        let r = http("GET", port, "/api/v1/targets", None).ok()?;
        let j: Value = serde_json::from_str(&r.body).ok()?;
        let e = j["data"]["discoveryErrors"].as_array()?.clone();
        e.iter().any(|e| e["error"].as_str().is_some_and(|m| m.contains(&lost))).then_some(e)
    });
    assert!(errors.iter().any(|e| e["error"].as_str().unwrap().contains("shares no network with vigie")), "{errors:?}");
    docker(&["service", "rm", &lost]);
    eventually(Duration::from_secs(60), "the report cleared after the removal", || {
        let r = http("GET", port, "/api/v1/targets", None).ok()?;
        let j: Value = serde_json::from_str(&r.body).ok()?;
        let e = j["data"]["discoveryErrors"].as_array()?.clone();
        (!e.iter().any(|e| e["error"].as_str().is_some_and(|m| m.contains(&lost)))).then_some(())
    });

    // Scale to 3: three targets.
    let start = Instant::now();
    docker(&["service", "scale", "-d", &format!("{app}=3")]);
    eventually(Duration::from_secs(60), "three targets after the scale", || {
        (of_job(port, &app).len() == 3).then_some(())
    });
    let scaled_in = start.elapsed();
    eventually(Duration::from_secs(60), "three targets up", || {
        (of_job(port, &app).iter().filter(|t| t["health"] == "up").count() == 3).then_some(())
    });

    // Remove: no targets, and the series go stale.
    let start = Instant::now();
    docker(&["service", "rm", &app]);
    eventually(Duration::from_secs(60), "no target after the removal", || of_job(port, &app).is_empty().then_some(()));
    let removed_in = start.elapsed();
    let q = format!("/api/v1/query?query={}", urlencode(&format!("up{{job=\"{app}\"}}")));
    eventually(Duration::from_secs(30), "the removed tasks' series stale", || {
        let r = http("GET", port, &q, None).ok()?;
        let j: Value = serde_json::from_str(&r.body).ok()?;
        j["data"]["result"].as_array().is_some_and(|a| a.is_empty()).then_some(())
    });
    eprintln!("swarm e2e: scale to 3 seen in {scaled_in:?}, removal seen in {removed_in:?}");
}
