"""The protobuf field numbers of the built-in messages kubectl's typed generators send (data).

`kubectl create deployment|service|role|rolebinding|clusterrole|clusterrolebinding|quota|job|
namespace|serviceaccount|configmap|secret` encode their objects as Kubernetes protobuf. Each
message below is listed as `number:name[:type]` (the name is also the JSON field name, as in
upstream's generated.proto files): `*name` is repeated, `%name` a map<string, type>, and a
missing type is a string; `int`, `bool` and `bytes` are scalars, any other type another
message. A message not listed here (volumes, probes, affinity, ...) is not decoded: a body that
uses one is answered 415 (see protobufs.py). `KIND_MESSAGES` names each kind's message.
"""

from __future__ import annotations

from collections.abc import Mapping

MESSAGES: Mapping[str, str] = {
    "Deployment": "1:metadata:ObjectMeta 2:spec:DeploymentSpec 3:status:DeploymentStatus",
    "DeploymentSpec": (
        "1:replicas:int 2:selector:LabelSelector 3:template:PodTemplateSpec "
        "4:strategy:DeploymentStrategy 5:minReadySeconds:int 6:revisionHistoryLimit:int "
        "7:paused:bool 9:progressDeadlineSeconds:int"
    ),
    "DeploymentStrategy": "1:type 2:rollingUpdate:RollingUpdateDeployment",
    "RollingUpdateDeployment": "1:maxUnavailable:IntOrString 2:maxSurge:IntOrString",
    "DeploymentStatus": (
        "1:observedGeneration:int 2:replicas:int 3:updatedReplicas:int 7:readyReplicas:int "
        "4:availableReplicas:int 5:unavailableReplicas:int 9:terminatingReplicas:int "
        "6:*conditions:DeploymentCondition 8:collisionCount:int"
    ),
    "LabelSelector": "1:%matchLabels 2:*matchExpressions:LabelSelectorRequirement",
    "LabelSelectorRequirement": "1:key 2:operator 3:*values",
    "PodTemplateSpec": "1:metadata:ObjectMeta 2:spec:PodSpec",
    "PodSpec": (
        "1:*volumes:Volume 20:*initContainers:Container 2:*containers:Container "
        "34:*ephemeralContainers:EphemeralContainer 3:restartPolicy "
        "4:terminationGracePeriodSeconds:int 5:activeDeadlineSeconds:int 6:dnsPolicy "
        "7:%nodeSelector 8:serviceAccountName 9:serviceAccount "
        "21:automountServiceAccountToken:bool 10:nodeName 11:hostNetwork:bool 12:hostPID:bool "
        "13:hostIPC:bool 27:shareProcessNamespace:bool 14:securityContext:PodSecurityContext "
        "15:*imagePullSecrets:LocalObjectReference 16:hostname 17:subdomain 18:affinity:Affinity "
        "19:schedulerName 22:*tolerations:Toleration 23:*hostAliases:HostAlias "
        "24:priorityClassName 25:priority:int 26:dnsConfig:PodDNSConfig "
        "28:*readinessGates:PodReadinessGate 29:runtimeClassName 30:enableServiceLinks:bool "
        "31:preemptionPolicy 32:%overhead:Quantity "
        "33:*topologySpreadConstraints:TopologySpreadConstraint 35:setHostnameAsFQDN:bool "
        "36:os:PodOS 37:hostUsers:bool 38:*schedulingGates:PodSchedulingGate "
        "39:*resourceClaims:PodResourceClaim 40:resources:ResourceRequirements "
        "41:hostnameOverride 43:schedulingGroup:PodSchedulingGroup "
        "44:*evictionResponders:EvictionResponder"
    ),
    "Container": (
        "1:name 2:image 3:*command 4:*args 5:workingDir 6:*ports:ContainerPort "
        "19:*envFrom:EnvFromSource 7:*env:EnvVar 8:resources:ResourceRequirements "
        "23:*resizePolicy:ContainerResizePolicy 24:restartPolicy "
        "25:*restartPolicyRules:ContainerRestartRule 9:*volumeMounts:VolumeMount "
        "21:*volumeDevices:VolumeDevice 10:livenessProbe:Probe 11:readinessProbe:Probe "
        "22:startupProbe:Probe 12:lifecycle:Lifecycle 13:terminationMessagePath "
        "20:terminationMessagePolicy 14:imagePullPolicy 15:securityContext:SecurityContext "
        "16:stdin:bool 17:stdinOnce:bool 18:tty:bool"
    ),
    "ContainerPort": "1:name 2:hostPort:int 3:containerPort:int 4:protocol 5:hostIP",
    "EnvVar": "1:name 2:value 3:valueFrom:EnvVarSource",
    "ResourceRequirements": "1:%limits:Quantity 2:%requests:Quantity 3:*claims:ResourceClaim",
    "Quantity": "1:string",
    "IntOrString": "1:type:int 2:intVal:int 3:strVal",
    "ObjectMeta": (
        "1:name 2:generateName 3:namespace 4:selfLink 5:uid 6:resourceVersion 7:generation:int "
        "8:creationTimestamp:Time 9:deletionTimestamp:Time 10:deletionGracePeriodSeconds:int "
        "11:%labels 12:%annotations 13:*ownerReferences:OwnerReference 14:*finalizers "
        "17:*managedFields:ManagedFieldsEntry"
    ),
    "Service": "1:metadata:ObjectMeta 2:spec:ServiceSpec 3:status:ServiceStatus",
    "ServiceSpec": (
        "1:*ports:ServicePort 2:%selector 3:clusterIP 18:*clusterIPs 4:type 5:*externalIPs "
        "7:sessionAffinity 8:loadBalancerIP 9:*loadBalancerSourceRanges 10:externalName "
        "11:externalTrafficPolicy 12:healthCheckNodePort:int 13:publishNotReadyAddresses:bool "
        "14:sessionAffinityConfig:SessionAffinityConfig 19:*ipFamilies 17:ipFamilyPolicy "
        "20:allocateLoadBalancerNodePorts:bool 21:loadBalancerClass 22:internalTrafficPolicy "
        "23:trafficDistribution"
    ),
    "ServicePort": (
        "1:name 2:protocol 6:appProtocol 3:port:int 4:targetPort:IntOrString 5:nodePort:int"
    ),
    "ServiceStatus": "1:loadBalancer:LoadBalancerStatus 2:*conditions:Condition",
    "LoadBalancerStatus": "1:*ingress:LoadBalancerIngress",
    "Role": "1:metadata:ObjectMeta 2:*rules:PolicyRule",
    "ClusterRole": "1:metadata:ObjectMeta 2:*rules:PolicyRule 3:aggregationRule:AggregationRule",
    "PolicyRule": "1:*verbs 2:*apiGroups 3:*resources 4:*resourceNames 5:*nonResourceURLs",
    "AggregationRule": "1:*clusterRoleSelectors:LabelSelector",
    "RoleBinding": "1:metadata:ObjectMeta 2:*subjects:Subject 3:roleRef:RoleRef",
    "ClusterRoleBinding": "1:metadata:ObjectMeta 2:*subjects:Subject 3:roleRef:RoleRef",
    "Subject": "1:kind 2:apiGroup 3:name 4:namespace",
    "RoleRef": "1:apiGroup 2:kind 3:name",
    "ResourceQuota": "1:metadata:ObjectMeta 2:spec:ResourceQuotaSpec 3:status:ResourceQuotaStatus",
    "ResourceQuotaSpec": "1:%hard:Quantity 2:*scopes 3:scopeSelector:ScopeSelector",
    "ResourceQuotaStatus": "1:%hard:Quantity 2:%used:Quantity",
    "ScopeSelector": "1:*matchExpressions:ScopedResourceSelectorRequirement",
    "ScopedResourceSelectorRequirement": "1:scopeName 2:operator 3:*values",
    "Job": "1:metadata:ObjectMeta 2:spec:JobSpec 3:status:JobStatus",
    "JobSpec": (
        "1:parallelism:int 2:completions:int 3:activeDeadlineSeconds:int "
        "11:podFailurePolicy:PodFailurePolicy 16:successPolicy:SuccessPolicy 7:backoffLimit:int "
        "12:backoffLimitPerIndex:int 13:maxFailedIndexes:int 4:selector:LabelSelector "
        "5:manualSelector:bool 6:template:PodTemplateSpec 8:ttlSecondsAfterFinished:int "
        "9:completionMode 10:suspend:bool 14:podReplacementPolicy 15:managedBy "
        "17:scheduling:JobSchedulingConfiguration"
    ),
    "JobStatus": (
        "1:*conditions:JobCondition 2:startTime:Time 3:completionTime:Time 4:active:int "
        "5:succeeded:int 6:failed:int 11:terminating:int 7:completedIndexes 10:failedIndexes "
        "8:uncountedTerminatedPods:UncountedTerminatedPods 9:ready:int"
    ),
    "Namespace": "1:metadata:ObjectMeta 2:spec:NamespaceSpec 3:status:NamespaceStatus",
    "NamespaceSpec": "1:*finalizers",
    "NamespaceStatus": "1:phase 2:*conditions:NamespaceCondition",
    "ServiceAccount": (
        "1:metadata:ObjectMeta 2:*secrets:ObjectReference "
        "3:*imagePullSecrets:LocalObjectReference 4:automountServiceAccountToken:bool"
    ),
    "ObjectReference": "1:kind 2:namespace 3:name 4:uid 5:apiVersion 6:resourceVersion 7:fieldPath",
    "LocalObjectReference": "1:name",
    "ConfigMap": "1:metadata:ObjectMeta 4:immutable:bool 2:%data 3:%binaryData:bytes",
    "Secret": "1:metadata:ObjectMeta 5:immutable:bool 2:%data:bytes 4:%stringData 3:type",
}

KIND_MESSAGES: Mapping[tuple[str, str], str] = {
    ("v1", "Namespace"): "Namespace",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Service"): "Service",
    ("v1", "ResourceQuota"): "ResourceQuota",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("rbac.authorization.k8s.io/v1", "Role"): "Role",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "ClusterRole",
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): "RoleBinding",
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): "ClusterRoleBinding",
}
