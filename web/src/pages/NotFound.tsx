import { Link } from "react-router";
import { useTitle } from "../components/bits";

export function NotFound({ what = "This page does not exist." }: { what?: string }) {
  useTitle("Not found");
  return (
    <div className="page">
      <h1>Not found</h1>
      <p>{what}</p>
      <p>
        <Link to="/">Browse live channels</Link>
      </p>
    </div>
  );
}
