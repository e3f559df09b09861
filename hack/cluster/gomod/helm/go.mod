// Builds helm from the pinned helm.sh/helm/v3 module (hack/cluster/build.sh helm).
module kascade.local/helmbuild

go 1.26
