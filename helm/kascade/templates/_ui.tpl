{{/* The web UI's names and RBAC rules. */}}
{{- define "kascade.uiName" -}}
{{- printf "%s-ui" (include "kascade.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kascade.uiSelectorLabels" -}}
app.kubernetes.io/name: {{ include "kascade.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: ui
{{- end }}

{{/* Namespaces the UI shows: ui.namespaces, else the operator's. Empty list: every namespace. */}}
{{- define "kascade.uiNamespaces" -}}
{{- if .Values.ui.namespaces }}
{{- toJson (uniq .Values.ui.namespaces) }}
{{- else if eq .Values.scope "namespaced" }}
{{- include "kascade.watchNamespaces" . }}
{{- else }}
{{- toJson list }}
{{- end }}
{{- end }}

{{/* What the UI server itself may do: read, nothing else (actions use each user's token). */}}
{{- define "kascade.uiServerRules" -}}
# The shared watches that feed every browser.
- apiGroups: [kascade.io]
  resources: [pipelines, pipelineruns, taskruns, pools]
  verbs: [get, list, watch]
# The spec a run executes (a run of a Pipeline references its snapshot), read on demand.
- apiGroups: [kascade.io]
  resources: [pipelinesnapshots]
  verbs: [get]
# SLA misses (SlaMissed Events on runs).
- apiGroups: [""]
  resources: [events]
  verbs: [list, watch]
{{- end }}

{{/* A person who may look: pipelines, runs, task runs, pools, pods' logs and Events. */}}
{{- define "kascade.pipelineViewerRules" -}}
- apiGroups: [kascade.io]
  resources: [pipelines, pipelineruns, taskruns, pools, pipelinesnapshots, tasktemplates, taskcaches]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods, pods/log, events]
  verbs: [get, list, watch]
{{- end }}

{{/* A person who may also steer: Trigger, Backfill, Clear, Mark, Pause (what kascade.actions writes). */}}
{{- define "kascade.pipelineOperatorRules" -}}
{{ include "kascade.pipelineViewerRules" . }}
# Trigger and Backfill create runs; Clear and Mark ask the operator to reload a run.
- apiGroups: [kascade.io]
  resources: [pipelineruns]
  verbs: [create, patch]
- apiGroups: [kascade.io]
  resources: [pipelineruns/status, taskruns/status]
  verbs: [patch]
# Clear forgets the cleared attempts (their TaskRuns and pods).
- apiGroups: [kascade.io]
  resources: [taskruns]
  verbs: [delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [delete]
# Pause and unpause (spec.suspend).
- apiGroups: [kascade.io]
  resources: [pipelines]
  verbs: [patch]
{{- end }}
