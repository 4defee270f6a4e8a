{{- define "turnbroker.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "turnbroker.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "turnbroker.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference from {repository, tag, digest}: by digest when given. */}}
{{- define "turnbroker.imageRef" -}}
{{- if .image.digest -}}
{{ .image.repository }}@{{ .image.digest }}
{{- else -}}
{{ .image.repository }}:{{ default .default .image.tag }}
{{- end -}}
{{- end -}}

{{- define "turnbroker.image" -}}
{{ include "turnbroker.imageRef" (dict "image" .Values.image "default" .Chart.AppVersion) }}
{{- end -}}

{{- define "turnbroker.brokerAddress" -}}
{{- if .Values.turn.brokerAddress -}}
{{ .Values.turn.brokerAddress }}
{{- else -}}
{{ include "turnbroker.fullname" . }}-broker.{{ .Release.Namespace }}.svc:{{ .Values.broker.port }}
{{- end -}}
{{- end -}}

{{/* Secret names, scoped to the release unless given. */}}
{{- define "turnbroker.tlsSecret" -}}
{{- $given := index .root.Values.tls (printf "%sSecret" .part) -}}
{{- default (printf "%s-%s-tls" (include "turnbroker.fullname" .root) .part) $given -}}
{{- end -}}

{{/* A value kept across upgrades: given, else the installed Secret's, else new. */}}
{{- define "turnbroker.keptSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .secret -}}
{{- if .given -}}
{{ .given | b64enc }}
{{- else if and $existing (hasKey $existing.data .key) -}}
{{ index $existing.data .key }}
{{- else -}}
{{ randAlphaNum 32 | b64enc }}
{{- end -}}
{{- end -}}

{{/* Restricted Pod Security Standard, for containers that need nothing else. */}}
{{- define "turnbroker.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
