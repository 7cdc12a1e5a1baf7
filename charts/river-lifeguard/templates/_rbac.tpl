{{/*
The permissions the operator needs wherever it watches: in each watched namespace's Role, or in
the ClusterRole of cluster-wide mode. Least privilege: reads of what it judges, writes only on
its own resource, Events, and (when restarts are enabled) pod evictions. kopf runs standalone
(no peering objects) with cluster scanning disabled, so it needs no namespace or CRD access.
*/}}
{{- define "lifeguard.watchRules" -}}
# JobPolicies: watched by kopf, which patches their status and keeps its handler progress and
# finalizer in the object's metadata (annotations, finalizers).
- apiGroups: ["lifeguard.dev"]
  resources: ["jobpolicies"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["lifeguard.dev"]
  resources: ["jobpolicies/status"]
  verbs: ["get", "patch"]
# The pods running River workers: their phase, container states and restarts decide verdicts.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["get", "list", "watch"]
# The database URL named by a JobPolicy's spec.database.secretRef. The Secret names are the
# users', unknown at install time, so resourceNames cannot narrow this; the Role does, per
# namespace.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# Events on JobPolicies and pods (JobRescued, CircuitOpened, ...), from kopf and the operator.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.restarts.enabled }}
# RestartPod: the Eviction API, so that PodDisruptionBudgets hold. Never plain pod deletion.
- apiGroups: [""]
  resources: ["pods/eviction"]
  verbs: ["create"]
{{- end }}
{{- end -}}
