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
{{- if and .Values.admission.requireApproval (not .Values.webhook.enabled) }}
{{- fail "admission.requireApproval=true needs webhook.enabled=true (only the webhook approves specs). To run without it, set admission.requireApproval=false too, and read docs/security.md first: anyone who may create a Pipeline can then use every ServiceAccount, Secret and pod privilege of its namespace" }}
{{- end }}
{{- end }}

{{/* The namespace `helm test` runs its pipeline in: the first watched one. */}}
{{- define "kascade.testNamespace" -}}
{{- if eq .Values.scope "cluster" }}{{ .Release.Namespace }}{{ else }}{{ include "kascade.watchNamespaces" . | fromJsonArray | first }}{{ end }}
{{- end }}

{{- define "kascade.approvalSecretName" -}}
{{- printf "%s-approval-key" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
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

{{/* RBAC rules of the operator in a watched namespace (Role) or everywhere (ClusterRole).
     Each rule says why the operator needs it; docs/install.md has the same table. */}}
{{- define "kascade.operatorRules" -}}
# Its own objects: it reads Pipelines and Pools, creates PipelineRuns (schedules) and
# TaskRuns (one per task), patches runs (the frozen spec), deletes runs (history limits),
# and keeps one TaskCache per pipeline with a cached task.
- apiGroups: [kascade.io]
  resources: [pipelines, pipelineruns, taskruns, pools, taskcaches]
  verbs: [get, list, watch, create, update, patch, delete]
# The frozen spec a Pipeline's runs share (one per version): made, read, pruned, never changed.
- apiGroups: [kascade.io]
  resources: [pipelinesnapshots]
  verbs: [get, list, create, delete]
# TaskTemplates: read (a run copies the ones it uses into its spec), never changed.
- apiGroups: [kascade.io]
  resources: [tasktemplates]
  verbs: [get, list, watch]
# Status of its objects (validity, schedule, run and task states, pool usage, cache entries).
- apiGroups: [kascade.io]
  resources: [pipelines/status, pipelineruns/status, taskruns/status, pools/status, taskcaches/status, tasktemplates/status]
  verbs: [get, patch]
# One pod per task attempt (and notification hook): watched to follow attempts, deleted
# on timeouts and kills; the admission webhook creates them with dryRun=All (never stored)
# to check a spec's pods before it is admitted.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
{{- if .Values.objectStore.existingSecret }}
# Outputs beyond 4 KiB: the operator reads them from the outputs sidecar's log (at most
# objectStore.maxOutputBytes) and writes them to the object store itself.
- apiGroups: [""]
  resources: [pods/log]
  verbs: [get]
{{- end }}
{{- if .Values.rbac.readSecrets }}
# Notification webhook URLs given as urlFrom a Secret key, and the values of the Secrets a
# task uses, to mask them in its outputs and archived logs. Only get (no list, no watch): by name.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
{{- end }}
# Kubernetes Events on pipelines, runs and task runs (kopf posts core/v1 Events).
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end }}

{{/* The leader-election Lease: one per release, so two releases can share a namespace. */}}
{{- define "kascade.leaseName" -}}
{{- printf "%s-operator" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
