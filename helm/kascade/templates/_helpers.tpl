{{/* Chart name. */}}
{{- define "kascade.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release name, plus the chart name unless the release name contains it. */}}
{{- define "kascade.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of cluster-scoped objects: unique per release namespace. */}}
{{- define "kascade.clusterName" -}}
{{- printf "%s-%s" (include "kascade.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "kascade.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kascade.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kascade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "kascade.labels" -}}
helm.sh/chart: {{ include "kascade.chart" . }}
app.kubernetes.io/name: {{ include "kascade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kascade
{{- end }}

{{- define "kascade.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kascade.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Namespaces watched in namespaced scope (default: the release namespace). */}}
{{- define "kascade.watchNamespaces" -}}
{{- $nss := .Values.watchNamespaces | default (list .Release.Namespace) }}
{{- toJson (uniq $nss) }}
{{- end }}

{{- define "kascade.validateValues" -}}
{{- if not (has .Values.scope (list "cluster" "namespaced")) }}
{{- fail (printf "scope must be cluster or namespaced, not %q" .Values.scope) }}
{{- end }}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicas > 1 needs leaderElection.enabled=true (two active operators would fight over runs)" }}
{{- end }}
{{- end }}

{{- define "kascade.metricsServiceName" -}}
{{- printf "%s-metrics" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kascade.webhookServiceName" -}}
{{- printf "%s-webhook" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kascade.webhookSecretName" -}}
{{- printf "%s-webhook-tls" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* RBAC rules of the operator in a watched namespace (Role) or everywhere (ClusterRole). */}}
{{- define "kascade.operatorRules" -}}
# Pipelines, runs, task runs and pools: the operator's own objects.
- apiGroups: [kascade.io]
  resources: [pipelines, pipelineruns, taskruns, pools]
  verbs: [get, list, watch, create, update, patch, delete]
- apiGroups: [kascade.io]
  resources: [pipelines/status, pipelineruns/status, taskruns/status, pools/status]
  verbs: [get, patch]
# One pod per task attempt.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
{{- if .Values.rbac.readSecrets }}
# Notification webhook URLs given as urlFrom a Secret key.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
# Kubernetes Events on pipelines and runs (kopf posts core/v1 Events).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The leader-election Lease: one per release, so two releases can share a namespace. */}}
{{- define "kascade.leaseName" -}}
{{- printf "%s-operator" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
