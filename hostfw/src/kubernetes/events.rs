//! Kubernetes Events on the CCNPs hostfw leaves out: `kubectl describe
//! ccnp NAME` (and `kubectl get events`) show why a node does not enforce
//! it. Core/v1 Events in namespace `default`, where the events of
//! cluster-scoped objects go. Without RBAC for it, hostfw says so once and
//! reports in the journal and `status` only.

use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{MicroTime, Time},
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, ObjectMeta, PostParams},
};

/// Posts Events for one node.
pub struct Reporter {
    api: Api<Event>,
    node: String,
    /// RBAC refused once: stop trying.
    forbidden: bool,
}

impl Reporter {
    /// A reporter for `node` (the Event's source host).
    #[must_use]
    pub fn new(client: Client, node: String) -> Self {
        Self {
            api: Api::namespaced(client, "default"),
            node,
            forbidden: false,
        }
    }

    /// A Warning Event `InvalidPolicy` on the CCNP, with the errors.
    pub async fn invalid_policy(&mut self, obj: &DynamicObject, errors: &str) {
        if self.forbidden {
            return;
        }
        let name = obj.name_any();
        let now = Timestamp::now();
        // Events are capped at 1 KiB of message by convention.
        let mut message = format!("hostfw on {}: left out: {errors}", self.node);
        if message.len() > 1024 {
            let mut cut = 1021;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str("...");
        }
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{name}.hostfw.{}.{}",
                    self.node,
                    obj.metadata.resource_version.as_deref().unwrap_or("0")
                )),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("cilium.io/v2".into()),
                kind: Some("CiliumClusterwideNetworkPolicy".into()),
                name: Some(name.clone()),
                uid: obj.metadata.uid.clone(),
                resource_version: obj.metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some("InvalidPolicy".into()),
            message: Some(message),
            type_: Some("Warning".into()),
            source: Some(EventSource {
                component: Some("hostfw".into()),
                host: Some(self.node.clone()),
            }),
            reporting_component: Some("hostfw".into()),
            reporting_instance: Some(self.node.clone()),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: Some(MicroTime(now)),
            action: Some("Validate".into()),
            count: Some(1),
            ..Event::default()
        };
        let params = PostParams::default();
        let post = self.api.create(&params, &event);
        match tokio::time::timeout(std::time::Duration::from_secs(5), post).await {
            Ok(Ok(_)) => log::debug!("kubernetes: Event InvalidPolicy posted on ccnp/{name}"),
            Ok(Err(kube::Error::Api(e))) if e.code == 403 => {
                log::warn!(
                    "kubernetes: not allowed to create Events ({}); invalid policies are reported in the journal and `hostfw status` only",
                    e.message
                );
                self.forbidden = true;
            }
            Ok(Err(kube::Error::Api(e))) if e.code == 409 => {} // already reported
            Ok(Err(e)) => log::warn!("kubernetes: Event on ccnp/{name}: {e}"),
            Err(_) => log::warn!("kubernetes: Event on ccnp/{name}: no answer in 5 s"),
        }
    }
}
