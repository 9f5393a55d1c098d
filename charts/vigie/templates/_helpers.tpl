{{/*
The chart name, or nameOverride.
*/}}
{{- define "vigie.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's resources: fullnameOverride, else <release>-<name>, or
just <release> when it already contains the name. Truncated to 63 characters (DNS label);
the headless Service appends "-headless", so keep release names short.
*/}}
{{- define "vigie.fullname" -}}
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

{{/*
The headless Service that governs the StatefulSet.
*/}}
{{- define "vigie.headlessName" -}}
{{- printf "%s-headless" (include "vigie.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "vigie.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: immutable on a StatefulSet, so only name and instance.
*/}}
{{- define "vigie.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigie.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels on every resource.
*/}}
{{- define "vigie.labels" -}}
helm.sh/chart: {{ include "vigie.chart" . }}
{{ include "vigie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The ServiceAccount the pods run as.
*/}}
{{- define "vigie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "vigie.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The container image: repository:tag, or repository@digest when a digest is given.
*/}}
{{- define "vigie.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Whether a router configuration is mounted ("true" or "").
*/}}
{{- define "vigie.hasRouter" -}}
{{- if or .Values.router.existingConfigMap .Values.router.config }}true{{ end }}
{{- end }}

{{/*
The ConfigMap holding router.yml.
*/}}
{{- define "vigie.routerConfigMapName" -}}
{{- if .Values.router.existingConfigMap }}
{{- .Values.router.existingConfigMap }}
{{- else }}
{{- printf "%s-router" (include "vigie.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
The router.yml text: the string as given, or the map as YAML.
*/}}
{{- define "vigie.routerConfig" -}}
{{- if kindIs "string" .Values.router.config }}
{{- .Values.router.config }}
{{- else }}
{{- toYaml .Values.router.config }}
{{- end }}
{{- end }}
