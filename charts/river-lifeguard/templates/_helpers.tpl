{{/* The chart name, overridable. */}}
{{- define "lifeguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The full name of the release's objects: the release name, unless it already says the chart's. */}}
{{- define "lifeguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The name of cluster-scoped objects: they share one name space across releases, so it carries
the release namespace to keep two releases of the same name in different namespaces apart.
*/}}
{{- define "lifeguard.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "lifeguard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lifeguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lifeguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lifeguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "lifeguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: river-lifeguard
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "lifeguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lifeguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lifeguard.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
The watched namespaces as a JSON list (empty in cluster-wide mode); an empty list of names
means the release's namespace. Fails on contradictory values rather than guessing.
*/}}
{{- define "lifeguard.watchedNamespaces" -}}
{{- if .Values.watch.allNamespaces -}}
{{- if .Values.watch.namespaces -}}
{{- fail "watch.allNamespaces is true and watch.namespaces is set: choose one (cluster-wide, or a list of namespaces)" -}}
{{- end -}}
{{- list | toJson -}}
{{- else -}}
{{- default (list .Release.Namespace) .Values.watch.namespaces | toJson -}}
{{- end -}}
{{- end -}}

{{- define "lifeguard.metricsServiceEnabled" -}}
{{- if or .Values.metrics.service.enabled .Values.metrics.serviceMonitor.enabled -}}true{{- end -}}
{{- end -}}
